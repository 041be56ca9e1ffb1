"""Background job queues: what they hold, failed jobs and their requeue, and the rq-dashboard."""
