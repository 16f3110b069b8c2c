"""The running system around the actors: the supervisor and its collaborators, the clock, the job
runner, telemetry, logs."""
