"""The incident record: report, reclassify, notes, suspend/resume, its event log and
clocks explained, the engine steps that move it (progress), its timed reactions
(timers), who may see it (visibility), and its views."""
