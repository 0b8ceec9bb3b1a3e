from django.contrib import admin

from departments.models import (
    Department,
    Membership,
    Profile,
    QuizAttempt,
    Runbook,
    RunbookRevision,
    RunbookStepRun,
    Topic,
    TrainingAssignment,
    TrainingGate,
    TrainingModule,
    TrainingRecord,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "position")
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "department", "role", "created_at")
    list_filter = ("department", "role")
    search_fields = ("user__username",)


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "time_zone")


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "standard", "position")
    list_editable = ("standard", "position")


@admin.register(Runbook)
class RunbookAdmin(admin.ModelAdmin):
    list_display = ("title", "status", "owner", "next_review_date", "review_needed")
    list_filter = ("status", "review_needed", "topics")
    search_fields = ("title", "slug")
    raw_id_fields = ("current_revision",)
    readonly_fields = ("current_revision",)


@admin.register(RunbookRevision)
class RunbookRevisionAdmin(admin.ModelAdmin):
    """Read-only: a revision is history, and history is never changed or deleted."""

    list_display = ("runbook", "number", "state", "author", "created_at")
    list_filter = ("state",)
    search_fields = ("runbook__title", "note")

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(TrainingModule)
class TrainingModuleAdmin(admin.ModelAdmin):
    list_display = ("title", "status", "pass_mark", "recertify_after_days")
    list_filter = ("status",)
    search_fields = ("title",)


@admin.register(TrainingAssignment)
class TrainingAssignmentAdmin(admin.ModelAdmin):
    list_display = ("module", "user", "department", "role", "due_date", "active")
    list_filter = ("active", "department", "role")


@admin.register(TrainingRecord)
class TrainingRecordAdmin(admin.ModelAdmin):
    list_display = ("user", "module", "state", "current", "due_date", "completed_at")
    list_filter = ("state", "current", "module")
    search_fields = ("user__username", "module__title")


admin.site.register(QuizAttempt)
admin.site.register(TrainingGate)
admin.site.register(RunbookStepRun)
