"""The saved-backlog files of the legacy backends ([M] and [R]) and their importer."""
