import os
revision = "xxxx0002"
down_revision = os.environ.get(
    "PARENT")
