from django.contrib import admin

from suites.models import Method, MethodRun, Suite, SuiteTask


class SuiteTaskInline(admin.TabularInline):
    model = SuiteTask
    extra = 0
    fields = ("position", "key", "competition", "owned")
    raw_id_fields = ("competition",)


@admin.register(Suite)
class SuiteAdmin(admin.ModelAdmin):
    list_display = ("slug", "title", "visibility", "created_at")
    search_fields = ("slug", "title")
    filter_horizontal = ("organizers",)
    inlines = [SuiteTaskInline]


@admin.register(Method)
class MethodAdmin(admin.ModelAdmin):
    list_display = ("name", "suite", "owner", "created_at")
    list_filter = ("suite",)
    search_fields = ("name",)
    raw_id_fields = ("owner",)


@admin.register(MethodRun)
class MethodRunAdmin(admin.ModelAdmin):
    list_display = ("method", "suite_task", "submission", "created_at")
    raw_id_fields = ("method", "suite_task", "submission")
