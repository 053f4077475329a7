"""The queueprof test suite (a package, so worker processes can import ``tests.helpers``)."""
