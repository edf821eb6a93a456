"""`pricefeed report`: one self-contained HTML page (and optionally a PNG of it) about an exported lake.

For an IST date (or a range) it shows what a trader asks first: how complete the data is (a heat-map of
symbols x session minutes, or symbols x days for a range, worst first), which tickers failed and why
(the dead letters), which symbols Fyers does not know, and candlestick charts with volume of a few
symbols. Everything is read from an exported lake (``<lake>/raw/<raw key>``, ``<lake>/processed/<key>``,
as ``make demo`` / ``pricefeed local run --export`` leave it).

The page carries plotly.js inline (about 4.8 MB, once for every chart): it opens offline, from a mail
attachment or a CI artefact, and keeps hover and zoom, which a trader uses to read off a gap's minutes.
``lake_reader.gather`` reads (and validates the request) into a ``model.ReportData``; ``page.render_html``
renders it with the ``figures``; ``browser.screenshot`` drives Chromium.
"""
