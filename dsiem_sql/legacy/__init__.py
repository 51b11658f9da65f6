"""The saved-backlog files of the legacy backends (dsiem-backend and dsiem-rs) and their
importer (docs/behaviour.md, "Saved backlogs")."""
