"""Benchmark suites (issue 12): many methods across many tasks.

A suite is an ordered set of tasks. Each task is a competition's task (the same Task,
hidden ground truth, split, scorer, sandbox, phases and quotas: nothing duplicated), so a
task may belong to a competition, to a suite, or to both; a task made for a suite only is
a competition the suite owns (`SuiteTask.owned`), unlisted on its own. The suite's phases
(`SuitePhase`, suites/services_phases.py) are a schedule mirrored into the phases of every
competition it owns, which are what gate a submission; an attached task keeps its own. A participant
registers a method and submits to it one prediction file per task, or one container that
fans out into one submission per task; each is an ordinary submission of its task's
competition, scored and sandboxed as any other, linked to the method by a `MethodRun`.

The matrix's cells (score and 95 % interval on the task's board split and ranked version)
are computed by a worker when a submission finishes, and found stale after a version switch
or a finalize (suites/cells.py, told by competitions/signals.py); the matrix is read from
them and kept under a token (suites/selectors.py).

Contract: this app builds on competitions/ (models, services, selectors); competitions/,
judging/, scoring/ and notifications/ never import it (pyproject's import contracts). The
aggregates are pure functions in scoring/suites.py, scoring/rank_tests.py and
scoring/cd_diagram.py.
"""
