"""Values every page's layout needs."""


def navigation(request):
    return {}
