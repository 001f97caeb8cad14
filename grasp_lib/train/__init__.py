"""Training stages as thin, linear drivers over TRL's trainers (in-process or `python -m`)."""
