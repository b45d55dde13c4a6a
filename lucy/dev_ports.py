"""The ports ``lucy dev`` uses on this machine by default."""

POSTGRES = 55432
TEMPORAL = 7233
UI = 8233
INGRESS = 3000
