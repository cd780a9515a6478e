import csv
import io

from rest_framework.renderers import BaseRenderer


class CSVRenderer(BaseRenderer):
    """Renders `{"columns": [...], "rows": [[...], ...]}` as CSV; anything else as its detail."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        if isinstance(data, dict) and "csv_columns" in data:
            writer.writerow(data["csv_columns"])
            writer.writerows(data["csv_rows"])
        elif isinstance(data, dict):
            writer.writerow(["detail"])
            writer.writerow([data.get("detail", "")])
        return buffer.getvalue().encode("utf-8")
