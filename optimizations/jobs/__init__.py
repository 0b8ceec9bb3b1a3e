"""Jobs: how analysis work comes into being, runs in a worker, and ends.

engine (start / cancel / repeat runs), runner (one job in a worker), kinds and modes
(what a run is made of), lease and cool-down, limits, housekeeping (reaper, sweeper,
schedules), availability (the minute check), sentinel, baselines, verdicts, polling.
"""
