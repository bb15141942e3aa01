#!/usr/bin/env bash
# gen-db.sh - the snapshot benchmark's database: an invoicing / analytics
# schema filled server-side (generate_series) with text and numbers that
# compress like real data - names, e-mails, words, amounts, timestamps,
# JSONB - not pgbench's blank padding.
#
# usage: gen-db.sh [--scale S]    (S=1: 1.56 GiB by pg_database_size)
#
# Connects with the libpq environment (PGHOST, PGPORT, PGUSER,
# PGDATABASE) as a superuser, into an empty database. Prints the time it
# took and the size reached. Fast on 2 cores: the big tables are loaded
# by two sessions at once, each table created and filled in one
# transaction (no WAL for it under wal_level=minimal), frozen and
# analyzed before its indexes are built; foreign keys are added NOT VALID
# then validated in parallel. Every table is logged: pg_dump must see it.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
scale=1
while (($#)); do
	case $1 in
	--scale) scale=$2; shift 2 ;;
	-h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "gen-db.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done

n() { awk -v n="$1" -v s="$scale" 'BEGIN { v = int(n * s); print (v < 100 ? 100 : v) }'; }
N_ORG=$(n 20000)
N_CUST=$(n 1400000)
N_INV=$(n 3200000)
N_EVT=$(n 1000000)
N_PRED=$(n 1300000)

sql() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

# pick F: one random element of the word list F() (an immutable SQL
# function: the planner folds it into a constant array).
pick() { printf "(%s())[1 + floor(random() * cardinality(%s()))::int]" "$1" "$1"; }

# words K: K random words, a sentence of a product description or note.
words() {
	local i e=""
	for ((i = 0; i < $1; i++)); do e+="${e:+, }$(pick w_words)"; done
	printf "concat_ws(' ', %s)" "$e"
}

# ts FROM SPAN: a timestamp uniformly in [FROM, FROM + SPAN).
ts() { printf "(timestamptz '%s' + random() * interval '%s')" "$1" "$2"; }

schema() {
	sql <<'SQL'
CREATE FUNCTION w_first() RETURNS text[] IMMUTABLE LANGUAGE sql AS $$ SELECT '{James,Mary,Robert,Patricia,John,Jennifer,Michael,Linda,David,Elizabeth,William,Barbara,Richard,Susan,Joseph,Jessica,Thomas,Sarah,Charles,Karen,Christopher,Lisa,Daniel,Nancy,Matthew,Betty,Anthony,Margaret,Mark,Sandra,Donald,Ashley,Steven,Kimberly,Paul,Emily,Andrew,Donna,Joshua,Michelle,Kenneth,Carol,Kevin,Amanda,Brian,Dorothy,George,Melissa,Timothy,Deborah,Ronald,Stephanie,Edward,Rebecca,Jason,Sharon,Jeffrey,Laura,Ryan,Cynthia,Jacob,Kathleen,Gary,Amy,Nicholas,Angela,Eric,Shirley,Jonathan,Anna,Stephen,Brenda,Larry,Pamela,Justin,Emma,Scott,Nicole,Brandon,Helen,Benjamin,Samantha,Samuel,Katherine,Gregory,Christine,Alexander,Debra,Frank,Rachel,Patrick,Carolyn,Raymond,Janet,Jack,Catherine,Dennis,Maria,Jerry,Heather,Tyler,Diane,Aaron,Ruth,José,Julie,Adam,Olivia,Henry,Joyce,Nathan,Virginia,Zachary,Victoria,Kyle,Kelly,Walter,Lauren,Peter,Christina,Harold,Joan,Jeremy,Evelyn,Ethan,Judith,Carl,Megan,Keith,Andrea,Roger,Cheryl,Gerald,Hannah,Christian,Jacqueline,Terry,Martha,Sean,Gloria,Arthur,Teresa,Austin,Ann,Noah,Sara,Lawrence,Madison,Jesse,Frances,Joe,Kathryn,Bryan,Janice,Billy,Jean,Jordan,Abigail,Albert,Alice,Dylan,Julia,Bruce,Judy,Willie,Sophia,Gabriel,Grace,Alan,Denise,Juan,Amber,Logan,Doris,Wayne,Marilyn,Ralph,Danielle,Roy,Beverly,Eugene,Isabella,Randy,Theresa,Vincent,Diana,Russell,Natalie,Louis,Brittany,Philip,Charlotte,Bobby,Marie,Johnny,Kayla,Bradley,Alexis,Søren,Zoë,François,Mónica,Björn,Ayşe,Łukasz,Hiroshi,Priya,Wei}'::text[] $$;
CREATE FUNCTION w_last() RETURNS text[] IMMUTABLE LANGUAGE sql AS $$ SELECT '{Smith,Johnson,Williams,Brown,Jones,Garcia,Miller,Davis,Rodriguez,Martinez,Hernandez,Lopez,Gonzalez,Wilson,Anderson,Thomas,Taylor,Moore,Jackson,Martin,Lee,Perez,Thompson,White,Harris,Sanchez,Clark,Ramirez,Lewis,Robinson,Walker,Young,Allen,King,Wright,Scott,Torres,Nguyen,Hill,Flores,Green,Adams,Nelson,Baker,Hall,Rivera,Campbell,Mitchell,Carter,Roberts,Gomez,Phillips,Evans,Turner,Diaz,Parker,Cruz,Edwards,Collins,Reyes,Stewart,Morris,Morales,Murphy,Cook,Rogers,Gutierrez,Ortiz,Morgan,Cooper,Peterson,Bailey,Reed,Kelly,Howard,Ramos,Kim,Cox,Ward,Richardson,Watson,Brooks,Chavez,Wood,James,Bennett,Gray,Mendoza,Ruiz,Hughes,Price,Alvarez,Castillo,Sanders,Patel,Myers,Long,Ross,Foster,Jimenez,Müller,Schmidt,Schneider,Fischer,Weber,Dubois,Lefèvre,Rossi,Russo,Kowalski,Nowak,Jensen,Nielsen,Andersson,Johansson,Tanaka,Suzuki,Chen,Wang,Singh,Kumar,O''Brien,O''Connor,Van der Berg,De la Cruz}'::text[] $$;
CREATE FUNCTION w_words() RETURNS text[] IMMUTABLE LANGUAGE sql AS $$ SELECT '{the,of,and,to,in,for,is,on,that,by,this,with,you,it,not,or,be,are,from,at,as,your,all,have,new,more,an,was,we,will,can,about,if,page,my,has,search,free,but,our,one,other,do,no,information,time,they,site,he,up,may,what,which,their,news,out,use,any,there,see,only,so,his,when,contact,here,business,who,web,also,now,help,get,view,online,first,been,would,how,were,me,services,some,these,click,its,like,service,than,find,price,date,back,top,people,had,list,name,just,over,state,year,day,into,email,two,health,world,next,used,go,work,last,most,products,music,buy,data,make,them,should,product,system,post,her,city,add,policy,number,such,please,available,copyright,support,message,after,best,software,then,jan,good,video,well,where,info,rights,public,books,high,school,through,each,links,she,review,years,order,very,privacy,book,items,company,read,group,need,many,user,said,de,does,set,under,general,research,university,january,mail,full,map,reviews,program,life,know,games,way,days,management,part,could,great,united,hotel,real,item,international,center,ebay,must,store,travel,comments,made,development,report,off,member,details,line,terms,before,hotels,did,send,right,type,because,local,those,using,results,office,education,national,car,design,take,posted,internet,address,community,within,states,area,want,phone,dvd,shipping,reserved,subject,between,forum,family,long,based,code,show,even,black,check,special,prices,website,index,being,women,much,sign,file,link,open,today,technology,south,case,project,same,pages,version,section,own,found,sports,house,related,security,both,county,american,photo,game,members,power,while,care,network,down,computer,systems,three,total,place,end,following,download,him,without,per,access,think,north,resources,current,posts,big,media,law,control,water,history,pictures,size,art,personal,since,including,guide,shop,directory,board,location,change,white,text,small,rating,rate,government,children,during,usa,return,students,shopping,account,times,sites,level,digital,profile,previous,form,events,love,old,john,main,call,invoice,payment,overdue,refund,discount,quarterly,renewal,subscription,license,seats,annual,monthly,consulting,hours,travel,expenses,hardware,maintenance,warranty,shipping,customs,adjustment,credit,note,reminder,late,fee,waived,approved,pending,disputed,settled,partial,balance,forward}'::text[] $$;
CREATE FUNCTION w_company() RETURNS text[] IMMUTABLE LANGUAGE sql AS $$ SELECT '{acme,globex,initech,umbrella,hooli,stark,wayne,wonka,cyberdyne,tyrell,soylent,aperture,vandelay,gringotts,oceanic,monarch,nakatomi,virtucon,prestige,sterling,pied,piper,blue,green,north,south,river,stone,iron,bright,summit,harbor,pacific,atlantic,alpine,prairie,cedar,maple,oak,pine,silver,golden,eagle,falcon,lion,tiger,delta,omega,apex,zenith,vertex,nova,quantum,fusion,vector,matrix,logic,data,cloud,metric,signal,beacon,anchor,compass,orbit,pixel,spark,wave,forge,mill,works,labs,systems,partners,holdings,group,foods,logistics,health,energy,capital,media,retail,motors,software,analytics}'::text[] $$;
CREATE FUNCTION w_city() RETURNS text[] IMMUTABLE LANGUAGE sql AS $$ SELECT '{New York,Los Angeles,Chicago,Houston,Phoenix,Philadelphia,San Antonio,San Diego,Dallas,Austin,Toronto,Montréal,Vancouver,London,Manchester,Dublin,Paris,Lyon,Berlin,München,Hamburg,Köln,Amsterdam,Rotterdam,Brussels,Zürich,Genève,Wien,Milano,Roma,Madrid,Barcelona,Lisboa,Porto,København,Stockholm,Oslo,Helsinki,Warszawa,Kraków,Praha,Budapest,Athína,İstanbul,Tel Aviv,Dubai,Mumbai,Bengaluru,Singapore,Tokyo,Osaka,Seoul,Sydney,Melbourne,Auckland,São Paulo,Rio de Janeiro,Buenos Aires,Ciudad de México,Bogotá,Lima,Santiago,Cape Town,Lagos,Nairobi}'::text[] $$;
CREATE FUNCTION w_country() RETURNS text[] IMMUTABLE LANGUAGE sql AS $$ SELECT '{US,US,US,US,CA,GB,GB,IE,FR,DE,DE,NL,BE,CH,AT,IT,ES,PT,DK,SE,NO,FI,PL,CZ,HU,GR,TR,IL,AE,IN,SG,JP,KR,AU,NZ,BR,AR,MX,CO,PE,CL,ZA,NG,KE}'::text[] $$;
CREATE FUNCTION w_mailhost() RETURNS text[] IMMUTABLE LANGUAGE sql AS $$ SELECT '{gmail.com,gmail.com,gmail.com,outlook.com,hotmail.com,yahoo.com,icloud.com,proton.me,gmx.de,web.de,orange.fr,free.fr,libero.it,yandex.ru,qq.com,naver.com,example.com,example.org,mail.example.net}'::text[] $$;
CREATE FUNCTION w_path() RETURNS text[] IMMUTABLE LANGUAGE sql AS $$ SELECT '{/api/invoices,/api/invoices/search,/api/customers,/api/customers/import,/api/payments,/api/reports/monthly,/api/reports/aging,/api/models/predict,/api/models/anomaly,/api/auth/login,/api/auth/refresh,/api/settings,/api/webhooks/stripe,/api/export/csv,/api/health}'::text[] $$;
CREATE FUNCTION w_agent() RETURNS text[] IMMUTABLE LANGUAGE sql AS $$ SELECT '{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36","Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15","Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0","Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148","python-requests/2.31.0","okhttp/4.12.0","curl/8.4.0","PostmanRuntime/7.36.0","acme-erp-sync/3.2.1 (+https://erp.example.com)"}'::text[] $$;
CREATE FUNCTION w_action() RETURNS text[] IMMUTABLE LANGUAGE sql AS $$ SELECT '{invoice.created,invoice.sent,invoice.viewed,invoice.paid,invoice.overdue,invoice.voided,payment.succeeded,payment.failed,payment.refunded,customer.created,customer.updated,user.login,user.logout,export.requested,model.predicted,model.anomaly_flagged,webhook.delivered,webhook.failed}'::text[] $$;
CREATE FUNCTION w_tag() RETURNS text[] IMMUTABLE LANGUAGE sql AS $$ SELECT '{priority,enterprise,smb,trial,eu,us,apac,manual,api,import,recurring,one-off,flagged,reviewed,vip,churn-risk,upsell,legacy}'::text[] $$;

CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);
INSERT INTO alembic_version VALUES ('c4f1a2b3d5e6');

CREATE TABLE ml_models (
	id integer PRIMARY KEY,
	name varchar(80) NOT NULL UNIQUE,
	framework varchar(40) NOT NULL,
	created_at timestamptz NOT NULL
);
INSERT INTO ml_models VALUES
	(1, 'fraud-detector v3', 'pytorch 2.1.2', '2024-01-10 09:00Z'),
	(2, 'invoice-anomaly v1', 'scikit-learn 1.3.2', '2024-02-02 14:30Z'),
	(3, 'demand-forecast v2', 'lightgbm 4.1.0', '2024-02-20 08:15Z'),
	(4, 'churn-predictor v5', 'xgboost 2.0.3', '2024-03-01 11:45Z');
SQL
	sql <<SQL
CREATE TABLE organizations (
	id integer PRIMARY KEY,
	name varchar(120) NOT NULL,
	domain varchar(120) NOT NULL,
	plan varchar(16) NOT NULL,
	country char(2) NOT NULL,
	created_at timestamptz NOT NULL,
	settings jsonb NOT NULL
);
INSERT INTO organizations
SELECT i, initcap(a) || ' ' || initcap(b) || ' ' || (ARRAY['Inc.','LLC','GmbH','Ltd','S.A.','B.V.','AB','KK'])[1 + i % 8],
	a || '-' || b || i || '.example.com',
	(ARRAY['free','starter','team','business','enterprise'])[1 + (i * 7) % 5], c,
	$(ts 2016-01-01 '8 years'),
	jsonb_build_object('currency', (ARRAY['USD','EUR','GBP','JPY','CHF'])[1 + i % 5],
		'invoice_prefix', upper(left(a, 3)), 'payment_terms_days', (ARRAY[14,30,45,60])[1 + i % 4],
		'reminders', jsonb_build_array(7, 14, 30), 'timezone', 'UTC',
		'features', jsonb_build_object('anomaly_detection', i % 3 = 0, 'forecasting', i % 4 = 0))
FROM (SELECT i, $(pick w_company) a, $(pick w_company) b, $(pick w_country) c
	FROM generate_series(1, $N_ORG) i OFFSET 0) s;
SQL
}

load_customers() {
	sql <<SQL
BEGIN;
CREATE TABLE customers (
	id bigint NOT NULL,
	organization_id integer NOT NULL,
	first_name varchar(60) NOT NULL,
	last_name varchar(60) NOT NULL,
	email varchar(200) NOT NULL,
	phone varchar(32),
	city varchar(80) NOT NULL,
	country char(2) NOT NULL,
	status varchar(16) NOT NULL,
	lifetime_value numeric(14,2) NOT NULL,
	marketing_opt_in boolean NOT NULL,
	created_at timestamptz NOT NULL,
	last_login_at timestamptz
);
INSERT INTO customers
SELECT i, 1 + (i * 7919::bigint) % $N_ORG, f, l,
	translate(lower(f), 'éèëöüøóçşłæ ''', 'eeeouoocsla') || '.' || translate(lower(l), 'éèëöüøóçşłæ ''', 'eeeouoocsla') ||
		CASE WHEN i % 3 = 0 THEN (i % 1000)::text ELSE '' END || '@' || $(pick w_mailhost),
	CASE WHEN random() < 0.8 THEN '+1 ' || (200 + (random() * 799)::int) || '-555-' || lpad((random() * 9999)::int::text, 4, '0') END,
	$(pick w_city), $(pick w_country),
	(ARRAY['active','active','active','active','inactive','suspended','prospect'])[1 + floor(random() * 7)::int],
	round(exp(random() * 11)::numeric, 2), random() < 0.35, c,
	CASE WHEN random() < 0.9 THEN c + random() * interval '400 days' END
FROM (SELECT i, $(pick w_first) f, $(pick w_last) l, $(ts 2017-01-01 '7 years') c
	FROM generate_series(1, $N_CUST) i OFFSET 0) s;
COMMIT;
SQL
}

load_invoices() {
	sql <<SQL
BEGIN;
CREATE TABLE invoices (
	id bigint NOT NULL,
	customer_id bigint NOT NULL,
	organization_id integer NOT NULL,
	number varchar(24) NOT NULL,
	status varchar(12) NOT NULL,
	currency char(3) NOT NULL,
	issued_on date NOT NULL,
	due_on date NOT NULL,
	subtotal numeric(14,2) NOT NULL,
	tax numeric(14,2) NOT NULL,
	total numeric(14,2) NOT NULL,
	notes text,
	paid_at timestamptz
);
INSERT INTO invoices
SELECT i, cu, 1 + (cu * 7919) % $N_ORG, 'INV-' || to_char(d, 'YYYY') || '-' || lpad(i::text, 8, '0'),
	st, (ARRAY['USD','USD','EUR','EUR','GBP','JPY','CHF'])[1 + (cu % 7)::int], d, d + 30,
	sub, round(sub * 0.2, 2), round(sub * 1.2, 2),
	CASE WHEN random() < 0.35 THEN left($(words 14), 24 + (random() * 90)::int) END,
	CASE WHEN st = 'paid' THEN d + random() * interval '45 days' END
FROM (SELECT i, 1 + floor(random() * $N_CUST)::bigint cu, date '2018-01-01' + floor(random() * 2190)::int d,
	(ARRAY['paid','paid','paid','paid','paid','sent','overdue','draft','void'])[1 + floor(random() * 9)::int] st,
	round(exp(random() * 9)::numeric, 2) sub
	FROM generate_series(1, $N_INV) i OFFSET 0) s;
COMMIT;
SQL
}

load_events() {
	sql <<SQL
BEGIN;
CREATE TABLE events (
	id bigint NOT NULL,
	organization_id integer NOT NULL,
	customer_id bigint,
	occurred_at timestamptz NOT NULL,
	action varchar(40) NOT NULL,
	ip inet,
	user_agent text,
	payload jsonb NOT NULL
);
INSERT INTO events
SELECT i, 1 + floor(random() * $N_ORG)::int, CASE WHEN random() < 0.7 THEN 1 + floor(random() * $N_CUST)::bigint END,
	$(ts 2023-01-01 '1 year'), $(pick w_action),
	('10.' || (random() * 255)::int || '.' || (random() * 255)::int || '.' || (random() * 255)::int)::inet,
	$(pick w_agent),
	jsonb_build_object('request_id', md5(i::text), 'path', $(pick w_path), 'status', (ARRAY[200,200,200,200,201,204,400,401,404,409,422,500])[1 + floor(random() * 12)::int],
		'duration_ms', round((random() * random() * 2000)::numeric, 1),
		'amount', round(exp(random() * 8)::numeric, 2),
		'tags', jsonb_build_array($(pick w_tag), $(pick w_tag)),
		'message', $(words 6))
FROM generate_series(1, $N_EVT) i;
COMMIT;
SQL
}

load_predictions() {
	sql <<SQL
BEGIN;
CREATE TABLE prediction_history (
	id bigint NOT NULL,
	model_id integer NOT NULL,
	invoice_id bigint NOT NULL,
	input_sha256 char(64) NOT NULL,
	score double precision NOT NULL,
	label varchar(16) NOT NULL,
	features real[] NOT NULL,
	latency_ms integer NOT NULL,
	created_at timestamptz NOT NULL
);
INSERT INTO prediction_history
SELECT i, 1 + i % 4, 1 + floor(random() * $N_INV)::bigint,
	encode(sha256(int8send(i)), 'hex'), sc,
	CASE WHEN sc > 0.9 THEN 'anomaly' WHEN sc > 0.6 THEN 'review' ELSE 'normal' END,
	ARRAY[round(random()::numeric, 3), round(random()::numeric, 3), round(random()::numeric, 3),
		round((random() * 100)::numeric, 1), round((random() * 5000)::numeric, 2), (random() * 30)::int]::real[],
	5 + (random() * random() * 300)::int, $(ts 2023-06-01 '9 months')
FROM (SELECT i, round(random()::numeric ^ 3, 4)::float8 sc FROM generate_series(1, $N_PRED) i OFFSET 0) s;
COMMIT;
SQL
}

# settle TABLE: freeze and analyze (so no reader, pg_dump included, has
# hint bits to set and autovacuum nothing to do), then primary key and
# indexes, built after the load.
settle() {
	local t=$1; shift
	sql -c "VACUUM (FREEZE, ANALYZE) $t" -c "ALTER TABLE $t ADD PRIMARY KEY (id)"
	for ix in "$@"; do sql -c "CREATE INDEX ON $t ($ix)"; done
}

# table NAME LOADER INDEXED-COLUMNS...: load, settle, say how long it took.
table() {
	local t=$1 load=$2 s e size; shift 2
	s=$(date +%s%N)
	"$load"
	settle "$t" "$@"
	e=$(date +%s%N)
	size=$(sql -At -c "SELECT pg_size_pretty(pg_total_relation_size('$t'))")
	printf '  %-18s %8s with its indexes, in %s s\n' "$t" "$size" \
		"$(awk -v ns=$((e - s)) 'BEGIN { printf "%.1f", ns / 1e9 }')"
}

# The load in two streams of about the same work, one per core.
stream_a() {
	table events load_events occurred_at
	table customers load_customers organization_id email
}
stream_b() {
	table invoices load_invoices customer_id issued_on
	table prediction_history load_predictions invoice_id
}

fks() {
	sql <<'SQL'
ALTER TABLE customers ADD CONSTRAINT customers_organization_id_fkey
	FOREIGN KEY (organization_id) REFERENCES organizations NOT VALID;
ALTER TABLE invoices ADD CONSTRAINT invoices_customer_id_fkey
	FOREIGN KEY (customer_id) REFERENCES customers NOT VALID;
ALTER TABLE invoices ADD CONSTRAINT invoices_organization_id_fkey
	FOREIGN KEY (organization_id) REFERENCES organizations NOT VALID;
ALTER TABLE events ADD CONSTRAINT events_organization_id_fkey
	FOREIGN KEY (organization_id) REFERENCES organizations NOT VALID;
ALTER TABLE events ADD CONSTRAINT events_customer_id_fkey
	FOREIGN KEY (customer_id) REFERENCES customers NOT VALID;
ALTER TABLE prediction_history ADD CONSTRAINT prediction_history_invoice_id_fkey
	FOREIGN KEY (invoice_id) REFERENCES invoices NOT VALID;
ALTER TABLE prediction_history ADD CONSTRAINT prediction_history_model_id_fkey
	FOREIGN KEY (model_id) REFERENCES ml_models NOT VALID;
SQL
	# VALIDATE takes no lock that blocks another VALIDATE: two at a time
	{
		sql -c "ALTER TABLE invoices VALIDATE CONSTRAINT invoices_customer_id_fkey" \
			-c "ALTER TABLE invoices VALIDATE CONSTRAINT invoices_organization_id_fkey" \
			-c "ALTER TABLE prediction_history VALIDATE CONSTRAINT prediction_history_model_id_fkey"
	} &
	local a=$!
	sql -c "ALTER TABLE customers VALIDATE CONSTRAINT customers_organization_id_fkey" \
		-c "ALTER TABLE events VALIDATE CONSTRAINT events_organization_id_fkey" \
		-c "ALTER TABLE events VALIDATE CONSTRAINT events_customer_id_fkey" \
		-c "ALTER TABLE prediction_history VALIDATE CONSTRAINT prediction_history_invoice_id_fkey"
	wait "$a"
}

start=$(date +%s%N)
schema
stream_a & a=$!
stream_b & b=$!
rc=0
wait "$a" || rc=1
wait "$b" || rc=1
((rc == 0)) || { echo "gen-db.sh: loading failed" >&2; exit 1; }
fks
sql -c "VACUUM (FREEZE, ANALYZE) organizations, ml_models, alembic_version" -c CHECKPOINT
end=$(date +%s%N)
bytes=$(sql -At -c "SELECT pg_database_size(current_database())")
awk -v ms=$(((end - start) / 1000000)) -v b="$bytes" -v s="$scale" 'BEGIN {
	printf "database: %.2f GiB by pg_database_size (scale %s), generated in %.1f s\n",
		b / 1073741824, s, ms / 1000 }'
