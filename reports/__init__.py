"""Reports: pure functions from a results store to tables, Markdown, HTML and the check."""
