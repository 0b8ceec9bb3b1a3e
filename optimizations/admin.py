from django.contrib import admin

from optimizations.models import Initiative, Phase, PhaseTask, TargetService


@admin.register(TargetService)
class TargetServiceAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "base_url", "owner_department", "environment")
    list_filter = ("environment", "owner_department")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


class PhaseInline(admin.TabularInline):
    model = Phase
    extra = 0


@admin.register(Initiative)
class InitiativeAdmin(admin.ModelAdmin):
    list_display = ("title", "target", "run_mode", "status", "owner", "start_date", "target_date")
    list_filter = ("status", "run_mode", "target")
    search_fields = ("title",)
    inlines = [PhaseInline]


class PhaseTaskInline(admin.TabularInline):
    model = PhaseTask
    extra = 0


@admin.register(Phase)
class PhaseAdmin(admin.ModelAdmin):
    list_display = ("initiative", "number", "name", "lead_department", "status", "planned_end")
    list_filter = ("status", "lead_department")
    inlines = [PhaseTaskInline]


@admin.register(PhaseTask)
class PhaseTaskAdmin(admin.ModelAdmin):
    list_display = ("title", "phase", "department", "assignee", "status", "due_date")
    list_filter = ("status", "department")
    search_fields = ("title",)
