"""The data sets page: import a Pick-a-Pic shard, export training data, download finished exports."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from core.models import Job
from core.permissions import admin_required
from pipeline.datasets import DatasetError
from pipeline.forms import DatasetExportForm, DatasetImportForm
from pipeline.jobs import DATASET_EXPORT, DATASET_IMPORT, DatasetExportParams
from pipeline.services.datasets import dataset_export_start, dataset_import_start, export_files

RECENT = 20


@admin_required
def datasets_page(request: HttpRequest) -> HttpResponse:
    """Both forms, the recent imports with their progress, and the exports with signed download links."""
    import_form = DatasetImportForm(prefix="imp")
    export_form = DatasetExportForm(prefix="exp")
    action = request.POST.get("action") if request.method == "POST" else None
    if action == "import":
        import_form = DatasetImportForm(request.POST, request.FILES, prefix="imp")
        if import_form.is_valid():
            data = import_form.cleaned_data
            try:
                job = dataset_import_start(
                    upload=data["file"],
                    filename=data["file"].name,
                    campaign=data["campaign"],
                    campaign_name=data["campaign_name"],
                    aspect=data["aspect"],
                    format=data["format"],
                    created_by=request.user,
                )
            except DatasetError as exc:
                import_form.add_error("file", str(exc))
            else:
                messages.success(
                    request,
                    f"Import job {job.pk} queued: the file is checked in full before anything is stored.",
                )
                return redirect("pipeline:datasets")
    elif action == "export":
        export_form = DatasetExportForm(request.POST, prefix="exp")
        if export_form.is_valid():
            data = export_form.cleaned_data
            params = DatasetExportParams(
                campaign_ids=[c.pk for c in data["campaigns"]],
                format=data["format"],
                aspect_keys=[a.key for a in data["aspects"]],
                label_source=data["label_source"],
                judge_id=data["judge"].pk if data["judge"] else None,
                min_human_agreement=data["min_human_agreement"],
                include_flagged=data["include_flagged"],
                include_gold=data["include_gold"],
                ties=data["ties"],
                images=data["images"],
            )
            try:
                job = dataset_export_start(params=params, created_by=request.user)
            except ValueError as exc:
                export_form.add_error(None, str(exc))
            else:
                messages.success(request, f"Export job {job.pk} queued; its file appears below when done.")
                return redirect("pipeline:datasets")
    imports = Job.objects.filter(kind=DATASET_IMPORT).order_by("-created_at")[:RECENT]
    exports = Job.objects.filter(kind=DATASET_EXPORT).order_by("-created_at")[:RECENT]
    downloads = {
        item["job"].pk: item for item in export_files(j for j in exports if j.status == Job.Status.SUCCEEDED)
    }
    context = {
        "import_form": import_form,
        "export_form": export_form,
        "imports": imports,
        "exports": [(job, downloads.get(job.pk)) for job in exports],
    }
    return render(request, "pipeline/datasets.html", context)
