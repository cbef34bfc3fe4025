"""The ``upscope serve`` runtime: collectors on schedules, the latest Snapshot, SQLite history."""
