"""The console's page modules, in navigation order.

Each module under aibroker.web.pages exposes `router` (an APIRouter; mount.install includes it
with include_in_schema=False) and optionally `NAV` (a list of web.nav.NavEntry). Adding a page:
a new module, one line below, its templates in web/templates/<page>.html (or a folder of its
own). A page route looks like web/pages/overview.py:

    @router.get("/console/things")
    async def things(request: Request, user: ConsoleUser = Depends(page(Permission.VIEW_USAGE))) -> Response:
        ...call the same service the JSON API calls, for user.organization_id...
        return render(request, "things.html", title="Things", rows=rows)

    @router.post("/console/things/{thing_id}/delete")   # a form: action() checks the CSRF token
    async def delete(request: Request, thing_id: str, user: ConsoleUser = Depends(action(Permission.MANAGE_KEYS))) -> Response:
        ...a row of another organization -> raise PageNotFound (web.auth.own(user, row.organization_id))...
        return flash(request, RedirectResponse("/console/things", status_code=303), "Deleted.")

Forms carry <input type="hidden" name="csrf_token" value="{{ csrf_token }}">; fetch() calls
use window.aibroker.fetch (it adds the x-csrf-token header). Platform pages use admin_page() /
admin_action(); a SUPER_ADMIN with no membership lands on /console/admin after sign-in."""

PAGE_MODULES: list[str] = [
    "signin",
    "overview",
    "usage",
    "wallet",
    "keys",
    "billing",
    "playground",
    "prompt_templates",
    "recordings",
    "recordings_api",
    "voice",
    "admin_orgs",
    "admin_routing",
    "admin_catalog",
    "admin_providers",
    "admin_jobs",
    "admin_revenue",
    "channels",
    "ai_config",
    "inbox",
    "leads",
]
