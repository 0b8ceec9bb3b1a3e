"""Every main page, per persona, at a laptop's and a phone's width, in a real browser.

Each page must fit the viewport (no horizontal scroll), log no console error and
have no serious or critical axe-core violation. axe-core is the npm registry's
package, vendored minified at static/vendor/axe-core/ (tests/browser/fetch_axe.sh
fetches it again).
"""

from pathlib import Path
from pprint import pformat

import pytest
from django.urls import reverse

from departments.models import Runbook, TrainingModule
from portal.models import Notification
from tests.browser.conftest import ARTIFACTS
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).resolve().parents[2] / "static" / "vendor" / "axe-core" / "axe.min.js"
WIDTHS = {"laptop": (1440, 900), "phone": (375, 740)}
# One persona per way the pages differ: a manager sees every button, an engineer
# of another department fewer, a viewer none.
PERSONAS = ["dev.manager", "qa.engineer", "viewer"]


def main_pages(target, initiative, job):
    runbook = Runbook.objects.order_by("pk").first()
    module = TrainingModule.objects.order_by("pk").first()
    return {
        "dashboard": reverse("dashboard"),
        "initiatives": reverse("initiative_list"),
        "initiative board": reverse("initiative_detail", args=[initiative.pk]),
        "findings": reverse("finding_list", args=[target.slug]),
        "ROI": reverse("initiative_roi", args=[initiative.pk]),
        "report": reverse("initiative_report", args=[initiative.pk]),
        "portfolio": reverse("portfolio"),
        "targets": reverse("target_list"),
        "target": reverse("target_detail", args=[target.slug]),
        "SLO board": reverse("target_slo", args=[target.slug]),
        "job history": reverse("job_list"),
        "job page": reverse("job_detail", args=[job.pk]),
        "runbooks": reverse("runbook_list"),
        "runbook": reverse("runbook_detail", args=[runbook.slug]),
        "training": reverse("training_mine"),
        "module": reverse("training_module", args=[module.slug]),
        "status": reverse("status"),
    }


def sign_in(page, base, username):
    page.goto(base + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")


def problems_on(page, url, errors):
    """What is wrong with one page: overflow, console errors, serious axe violations."""
    errors.clear()
    page.goto(url)
    page.wait_for_load_state("load")
    found = []
    overflow = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    if overflow[0] > overflow[1]:
        wide = page.evaluate(
            # The outermost elements that stick out: their parent still fits.
            """() => [...document.querySelectorAll('body *')]
                 .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1
                   && e.parentElement.getBoundingClientRect().right <= window.innerWidth + 1)
                 .slice(0, 3).map(e => e.tagName + '.' + e.className + ' in '
                   + e.parentElement.tagName + '.' + e.parentElement.className)"""
        )
        found.append(f"{overflow[0]} px wide in a {overflow[1]} px viewport ({wide})")
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
             .filter(v => v.impact === 'serious' || v.impact === 'critical')
             .map(v => v.id + ': ' + v.nodes.slice(0, 2).map(n => n.target.join(' ')).join(', '))"""
    )
    found += [f"axe {v}" for v in violations]
    found += [f"console: {e}" for e in errors]
    return found


@pytest.mark.parametrize("language", ["en", "ja"])
@pytest.mark.parametrize("width", sorted(WIDTHS))
@pytest.mark.parametrize("username", PERSONAS)
def test_main_pages_fit_have_no_console_error_and_are_axe_clean(
    browser_page, live_server, demo, username, width, language
):
    page = browser_page
    # No language in the profile: the browser's is used.
    page.set_extra_http_headers({"Accept-Language": language})
    page.set_viewport_size(dict(zip(("width", "height"), WIDTHS[width], strict=True)))
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, live_server.url, username)
    assert page.get_attribute("html", "lang") == language
    # A laptop's top bar is one line: every link shown, none wrapped; a phone's folds.
    bar = page.evaluate("document.querySelector('.topbar').getBoundingClientRect().height")
    assert bar <= 56 if width == "laptop" else page.is_visible("[data-menu-toggle]")
    # English fits a laptop unfolded; whatever folds, Sign out stays within the window.
    if width == "laptop" and language == "en":
        assert not page.is_visible("[data-menu-toggle]")
    assert top_bar_problems(page) == []

    report = {}
    for name, path in main_pages(*demo).items():
        found = problems_on(page, live_server.url + path, errors)
        if found:
            report[name] = found
    assert report == {}, pformat(report, width=140)


def top_bar_problems(page):
    """What sticks out of the window in the top bar, its menu opened if it is folded."""
    found = []
    width = page.evaluate("window.innerWidth")
    folded = page.is_visible("[data-menu-toggle]")
    if folded:
        page.click("[data-menu-toggle]")
    if not page.is_visible(".usermenu button[type=submit]"):
        found.append("Sign out is not shown")
    shown = page.evaluate(
        """() => [...document.querySelectorAll('.topbar *')]
             .filter(e => e.getClientRects().length)
             .map(e => [e.tagName + ' ' + e.textContent.trim().slice(0, 20),
                        e.getBoundingClientRect().right])"""
    )
    found += [f"{name!r} ends at {right:.0f} px" for name, right in shown if right > width]
    if page.evaluate("document.documentElement.scrollWidth") > width:
        found.append("the page scrolls sideways")
    if folded:
        page.click("[data-menu-toggle]")
    return found


# The top bar's classes at every frame in which its links can be seen: a bar that
# folds after it was shown unfolded flashes.
RECORD_FRAMES = """
window.barFrames = [];
const record = () => {
  const bar = document.getElementById("topbar");
  const menu = document.getElementById("topbar-menu");
  if (bar && menu && getComputedStyle(menu).visibility !== "hidden") {
    window.barFrames.push(bar.className);
  }
  if (document.readyState !== "complete") requestAnimationFrame(record);
};
requestAnimationFrame(record);
"""


def test_the_top_bar_fits_or_folds_in_either_language_without_a_flash(
    browser_page, live_server, demo, django_user_model
):
    """The widest bar (a manager's: the Audit link, Incidents, a two-digit unread badge)
    shows every link on one line when it fits the window, and folds behind the Menu
    button when it does not, already at the first paint; Sign out is in the window."""
    page = browser_page
    sign_in(page, live_server.url, "dev.manager")
    user = django_user_model.objects.get(username="dev.manager")
    Notification.objects.bulk_create(
        Notification(user=user, subject=f"Run {n} finished", body="") for n in range(12)
    )
    page.add_init_script(RECORD_FRAMES)
    report, folds = {}, {}
    for language in ("en", "ja"):
        page.set_extra_http_headers({"Accept-Language": language})
        for width in (1440, 1280, 1024, 375):
            page.set_viewport_size({"width": width, "height": 800})
            page.goto(live_server.url + reverse("incident_list"))
            page.wait_for_load_state("load")
            assert page.get_attribute("html", "lang") == language
            assert page.text_content(".usermenu .count") == "12"
            assert page.locator(".mainnav a[href$='/incidents/']").count() == 1
            folded = page.is_visible("[data-menu-toggle]")
            folds[language, width] = folded
            final = page.evaluate("document.getElementById('topbar').className")
            flashes = {c for c in page.evaluate("window.barFrames") if c != final}
            found = top_bar_problems(page) + [f"painted as {c!r} before {final!r}" for c in flashes]
            height = page.evaluate("document.getElementById('topbar').offsetHeight")
            if not folded and height > 56:
                found.append(f"the unfolded bar wraps ({height} px high)")
            page.screenshot(path=str(ARTIFACTS / f"topbar-{language}-{width}.png"))
            if folded:
                page.click("[data-menu-toggle]")
                page.screenshot(path=str(ARTIFACTS / f"topbar-{language}-{width}-open.png"))
                page.click("[data-menu-toggle]")
            if found:
                report[language, width] = found
    assert report == {}, pformat(report, width=140)
    # English and Japanese (a point smaller) fit a laptop; a phone folds in either language.
    assert folds["en", 1440] is False and folds["ja", 1440] is False
    assert folds["en", 375] is True and folds["ja", 375] is True


def test_the_menu_button_opens_the_navigation_at_phone_width(browser_page, live_server, demo):
    page = browser_page
    page.set_viewport_size({"width": 375, "height": 740})
    sign_in(page, live_server.url, "dev.manager")
    assert not page.is_visible("text=Sign out")
    page.click("[data-menu-toggle]")
    assert page.get_attribute("[data-menu-toggle]", "aria-expanded") == "true"
    assert page.is_visible("text=Sign out")
    page.click(".mainnav >> text=Jobs")
    page.wait_for_url("**/jobs/")


def test_the_skip_link_is_the_first_tab_stop_and_lands_on_the_content(
    browser_page, live_server, demo
):
    page = browser_page
    sign_in(page, live_server.url, "dev.manager")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "content"


def test_the_benchmark_form_follows_the_chosen_test_type(browser_page, live_server, demo):
    page = browser_page
    target = demo[0]
    sign_in(page, live_server.url, "qa.engineer")
    page.goto(live_server.url + reverse("job_params", args=[target.slug, "benchmark"]))
    assert page.is_visible("#id_p-rate") and not page.is_visible("#id_p-step_factor")
    page.select_option("#id_p-mode", "stress")
    assert page.is_visible("#id_p-step_factor") and not page.is_visible("#id_p-rate")
    assert page.is_disabled("#id_p-rate")  # a hidden field is not sent
    page.select_option("#id_p-mode", "endurance")
    assert page.get_attribute("#id_p-rate", "placeholder") == "50"
    assert page.get_attribute("#id_p-duration", "placeholder") == "300"
    assert not page.is_visible("#id_p-timeout")
    page.click("details.advanced > summary")
    assert page.is_visible("#id_p-timeout")
