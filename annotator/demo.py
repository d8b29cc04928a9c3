"""What `kasauti demo` needs from this stage: provision a demo annotator and push the demo sample."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rubrics.schema import RubricSet

from .connect import owner_client
from .forms import FormOptions
from .people import Annotator, Roster, provision
from .push import PushReport, push
from .records import RECORD_MAP, RecordMap

DEMO_USER = "demo"


def demo_push(study_root: str | Path, study: str, sample: pd.DataFrame, rs: RubricSet, url: str, api_key: str,
              opts: FormOptions = FormOptions()) -> tuple[str, Path, PushReport]:
    """Provision annotator `demo` (every sample language) and push `sample`.

    Returns (annotator username, password file, push report); the password is in the 0600 file
    ``<study_root>/argilla/annotators.csv`` (written when the user is first created).
    """
    client = owner_client(url, api_key)
    languages = sorted(sample["language"].str.lower().unique())
    roster = Roster(annotators=[Annotator(username=DEMO_USER, name="Demo annotator", languages=languages)])
    home = Path(study_root) / "argilla"
    password_file = home / "annotators.csv"
    provision(client, roster, password_file)
    return DEMO_USER, password_file, push(client, sample, rs, study, RecordMap(home / RECORD_MAP), opts)
