"""The write side: the Application with one method per command, and the relay."""
