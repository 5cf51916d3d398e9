"""Recurring schedules: when they fire (:mod:`.triggers`) and whether a due time runs
(:mod:`.policy`, misfire and overlap). Pure; the scheduler loop builds on them."""
