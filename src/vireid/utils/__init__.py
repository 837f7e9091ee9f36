"""Small helpers shared by every layer: logging, seeding, environment report, atomic I/O."""
