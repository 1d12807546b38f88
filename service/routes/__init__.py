"""One APIRouter per resource; ``service.app`` includes them under /v1."""
