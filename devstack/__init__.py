"""The embedded default stack: every service of the system on one machine, from wheels."""
