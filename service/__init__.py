"""The REST service (FastAPI). Nothing else imports it; it imports no JAX, runner or CLI code.

For scripts (e.g. the demo)::

    from abcscale.service.app import create_app            # create_app(Settings | None) -> FastAPI
    from abcscale.service.config import Settings  # ABCSCALE_DATABASE_URL / _DATA_DIR / _API_TOKEN / _MAX_UPLOAD_MB
    from abcscale.service import crud
    with crud.open_session(settings) as session:  # creates the tables if needed
        fit_id = crud.create_fit(session, fit_result, df, name="demo")   # -> the new fit's id (str)
"""
