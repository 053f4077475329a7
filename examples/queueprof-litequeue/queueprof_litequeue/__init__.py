"""litequeue as a queueprof peer: installed next to queueprof, found by its entry point."""
