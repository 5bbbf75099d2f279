"""Process managers that react to events by issuing commands."""
