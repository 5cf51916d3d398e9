"""Recurring schedules (interval and cron triggers): arrive with the schedules issue."""
