-- depends: 0009.public
-- A chart's README as safe HTML, rendered and sanitized once when the chart is indexed (indexer.readme), so that no
-- read runs the renderer. NULL: no README, or one too large or too deeply nested to render (shown as text), or one
-- indexed before this column existed, which the workers render in the background (indexer.readme_backfill).
ALTER TABLE helm_charts ADD COLUMN readme_html text;
