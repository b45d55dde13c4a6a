"""Activities: all I/O of Lucy's tasks. Classes take injected clients; nothing reads the environment."""
