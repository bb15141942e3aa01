revision = 'notarevision'
down_revision = None
