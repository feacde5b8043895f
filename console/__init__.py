"""The browser console: pages for consultants and store managers, served by the API app.

- `links`: the signed single-use `/o/<token>` links in `assigned` and `reminder` notices;
- `session`: the signed session cookie, CSRF tokens, and who is signed in (re-checked on
  every request with the same standing check as API tokens);
- `codes`: sign-in by phone number and a 6-digit code sent by SMS;
- `live`: PostgreSQL LISTEN/NOTIFY fanned out to server-sent events in every API process;
- `routes_*`: the pages; they call the JSON API's own functions, never a copy of a rule;
- `templates/`, `static/`: Jinja2 templates; htmx and its SSE extension, vendored.
"""
