"""Native-speaker annotation in Argilla (kept import-light: `kasauti.study` imports `annotator.config`).

- `annotator.forms`: Argilla settings (the form) from a rubric family; dataset/workspace names.
- `annotator.people`: roster file, language workspaces, annotator users (passwords to a 0600 CSV).
- `annotator.push` / `annotator.pull` / `annotator.status`: idempotent push, complete pull, progress.
- `annotator.records`: opaque record ids (the study's item <-> record map) and text versions.
- `annotator.adjudicate`: opt-in judge suggestions after humans rated.
- `annotator.connect`: the owner's client (embedded server or external Argilla 2.x).
- `annotator.demo.demo_push`: what `kasauti demo` calls.
- `annotator.server`: the embedded Argilla server.
- `annotator.study`: the commands on a study directory: `provision_study` (`kasauti people`),
  `push_study` (`kasauti push`), `pull_study` (`kasauti pull`); also as ``annotator.<name>``,
  imported on first use. They take the owner's client: `annotator.connect.connect(root, cfg)`.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "study": ["provision_study", "pull_study", "push_study"],
})
