"""Recording fakes of outside APIs, served on 127.0.0.1 with a port the OS picks."""
