"""Analysis: pure functions of saved logits and labels (no model, no device, no I/O).

`metrics` (accuracy, NLL, Brier, the ECE family and its noise floor), `calibration`
(temperature fit), `posthoc` (post-hoc calibrators), `selective` (risk-coverage),
`stats` and `bootstrap` (intervals and tests), `claims` (verdicts on folk claims).
"""
