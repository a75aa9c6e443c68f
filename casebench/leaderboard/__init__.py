"""A leaderboard for casebench benchmarks with hidden test labels: accounts, uploads, a scoring queue, boards.

The pieces, one module each:

- :mod:`~casebench.leaderboard.config` — what a curator sets (boards = benchmark x phase, quotas, limits);
- :mod:`~casebench.leaderboard.db` — the SQLAlchemy tables (users, tokens, submissions, comparisons, phases);
- :mod:`~casebench.leaderboard.security` — password and token hashing, signed sessions, CSRF, rate limits;
- :mod:`~casebench.leaderboard.service` — what the web app and the CLI both call: create users and tokens,
  validate and accept an upload (the same parser as ``casebench evaluate``, errors sanitised), quotas,
  visibility of scores and results, reveal;
- :mod:`~casebench.leaderboard.worker` — the persistent scoring queue (atomic claims, re-queue at start-up);
- :mod:`~casebench.leaderboard.ranking` — pure functions: rank rows with ties where the paired difference to
  the neighbour is not significant;
- :mod:`~casebench.leaderboard.board` — the board table (rows, columns, CIs) from results objects, no I/O;
- :mod:`~casebench.leaderboard.app` — the FastAPI app: server-rendered pages (work without JavaScript) and a
  JSON API;
- :mod:`~casebench.leaderboard.export` — a static copy of the public boards;
- :mod:`~casebench.leaderboard.client` — ``casebench submit``.

Deployment notes and the configuration reference are in ``leaderboard/README.md`` at the repository root.
"""
