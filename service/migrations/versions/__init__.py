"""One module per schema revision, oldest first: 0001 is the schema of release 0.2.0 (made by ``create_all``)."""
