"""The listening test in a browser: raters on the same network open a link (`serapp listen-web`,
or the app's "Share in a browser…"). raters.py holds the test (the desktop's selection, practice,
answer files and resume, per rater), app.py its HTTP side, server.py the server, static/ the page."""
