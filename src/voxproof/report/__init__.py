"""Reports: summary.json, the console table and a self-contained HTML page, all read from a run store."""
