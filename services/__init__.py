"""Domain services: the one place each rule of the domain is written.

The JSON API (`api/`), the browser console, the activities and the CLI all call these;
none of them repeats a rule. Conventions:

- Small keyword-only functions: `await points.adjust(db=db, staff_id=…, actor=…, …)`.
  The caller passes its own session (`db`), Temporal client where one is needed, and who is
  acting (`services.scope.Principal`, or the actor's name and staff id).
- A refusal is a domain error (`services.errors`: `Invalid` → 422 naming each field,
  `NotFound` → 404, `Forbidden` → 403, `Conflict` → 409), never an HTTP exception; the API
  maps them in `api/edge.py`, a page renders their `message`, the CLI prints it.
- SQL building blocks are functions of columns (`points.balance_of(Staff.id)`,
  `roster.on_duty(Staff.id, at)`, `scope.visible(caller, store=…, subsite=…, staff=…)`),
  so a list, a lookup and the draw share one definition.

Modules:
- `orders`: the workflow id, intake checks, the submitted payload (409 on a changed one),
  `submit_order`, the row an order has between its 202 and its routing;
- `scope`: `Principal` (who calls), `visible` (SQL), `in_scope` (one row), `check_filters`;
- `points`: `balance_of` / `balance`, weights under the rule in force, `adjust`;
- `roster`: `covers`, `on_leave`, `on_duty` ("on duty at T" in SQL);
- `roster_changes`: `roll` / `reroll_staff` (duty slots from patterns), `wake_waiting`,
  `release_open_orders` (`Released`);
- `staff`: `candidates` (whom the draw weighs), `open_orders_of`, `update` (move, deactivate);
- `rules`: `rule_in_force`, `get_or_create_rule`, `rule_snapshot`;
- `subsites`: `site_infos`, `real_subdivision` (ISO 3166-2), `check_coverage`,
  `check_store_region`;
- `errors`: the domain errors.
"""
