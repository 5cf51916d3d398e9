"""Recurring schedules: when they fire (:mod:`.triggers`), whether a due time runs
(:mod:`.policy`, misfire and overlap; both pure), the scheduler that stores them and
fires them on the lease holder (:mod:`.service`), and the host-lifetime workers it
runs there (:mod:`.workers`)."""
