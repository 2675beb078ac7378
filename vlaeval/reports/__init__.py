"""Reports over run directories: statistics, tables, leaderboard, paired comparison, HTML.

``load`` reads stores; ``aggregate`` builds task/group/suite/average cells (``families.yaml``
says how suites group); ``stats`` holds the formulas; ``report``, ``leaderboard``, ``compare``
and ``power`` back the CLI commands of the same names; ``tables``/``html``/``svg`` render.
"""
