"""The incident record: report, reclassify and correct it (record_edits), whose it is
and notes that count as the caller's (callers, notes), suspend/resume, its event log
and clocks explained, the engine steps that move it (progress), its timed reactions
(timers), who may see it (visibility), and its views."""
