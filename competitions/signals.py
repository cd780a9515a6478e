"""Domain signals: what the domain tells the apps built on it (suites/), which it never
imports (pyproject's import contracts).

Each is sent inside the transaction that makes the change, so that a receiver's writes (an
outbox message, competitions/services/outbox.py) are committed if and only if the change
is. Receivers must be quick, write only in that transaction, and not fail it.

- `submission_finished(submission_id)`: a scoring attempt recorded its outcome, scored or
  failed (competitions/heartbeat.submission_claim_end).
- `ranking_changed(competition_id)`: what the competition ranks by changed for every
  submission at once: a task version switch (the scores ranked are another version's) or a
  finalize (the private split is ranked from now on).
"""

from __future__ import annotations

from django.dispatch import Signal

submission_finished = Signal()
ranking_changed = Signal()
