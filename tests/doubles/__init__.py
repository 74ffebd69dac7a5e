"""Local stand-ins for the services composer talks to, serving on 127.0.0.1 only."""
