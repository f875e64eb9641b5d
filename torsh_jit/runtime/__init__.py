"""Hardware detection, dispatch, threads and emulator runners."""
