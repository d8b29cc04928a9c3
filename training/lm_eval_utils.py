"""What lm-evaluation-harness calls from kasauti's local tasks (`training.evaluate` copies this file beside them)."""


def response_bits_per_byte(doc: dict, results: list) -> dict:
    """(log-likelihood, UTF-8 bytes) of a response given its chat prompt, for lm-eval's ``bits_per_byte`` aggregation.

    lm-eval moves whitespace that ends the prompt into the scored continuation, so the log-likelihood includes
    the chat template's whitespace after the assistant header (near certain for a chat model); the bytes counted
    are the response's."""
    loglikelihood, _is_greedy = results[0]
    return {"bits_per_byte": (loglikelihood, len(doc["text"].encode("utf-8")))}
