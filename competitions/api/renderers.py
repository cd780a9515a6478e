import io

from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer

from competitions.csvsafe import csv_writer


class CSVRenderer(BaseRenderer):
    """Renders `{"columns": [...], "rows": [[...], ...]}` as CSV; anything else as its detail."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        buffer = io.StringIO()
        writer = csv_writer(buffer)  # formula cells neutralized
        if isinstance(data, dict) and "csv_columns" in data:
            writer.writerow(data["csv_columns"])
            writer.writerows(data["csv_rows"])
        elif isinstance(data, dict):
            writer.writerow(["detail"])
            writer.writerow([data.get("detail", "")])
        return buffer.getvalue().encode("utf-8")


class DownloadNegotiation(DefaultContentNegotiation):
    """For views that answer a file: any Accept (application/octet-stream, text/csv, ...)
    gets the file rather than a 406; errors are still rendered by the first renderer."""

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable:
            return renderers[0], renderers[0].media_type
