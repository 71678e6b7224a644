"""One module per `dlrun` command; each parses its options and calls one worker."""
