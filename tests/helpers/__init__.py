"""What the tests share: seeded stores and servers, page readers, waits, and stand-in job workers."""
