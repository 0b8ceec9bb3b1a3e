# ruff: noqa: E501 -- Japanese prose: ruff counts a CJK character as two columns.
"""Analyzer texts in Japanese, keyed by rule id, put on the finding pages at render time.

The analyzers stay Django-free and write English (the CLI, JSON and SARIF keep
it); a finding row stores that English. When a page is shown in Japanese, the
title, why and fix of a rule listed here replace it; a rule not listed, or a
part not given, falls back to the stored English. Titles of the non-code rules
carry the measured figures in English (index names, percentages): the Japanese
name heads them and the stored title is shown beside it as data.

tests/optimizations/test_rule_texts.py holds this to every code-scan rule (FSA…)
and every rule id the analyzers write.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import get_language


@dataclass(frozen=True)
class RuleText:
    title: str
    why: str = ""
    fix: str = ""


JA: dict[str, RuleText] = {
    # --- code scan (FSA001–FSA502) ---------------------------------------------------
    "FSA001": RuleText(
        "ファイルを解析できませんでした",
        "ワーカーの Python がこのファイルを読めないため、どのルールもチェックしていません。"
        "検出事項が「ない」のではなく「不明」です。",
        "構文エラーを直すか、プロジェクトが対象とする Python のバージョンのワーカーでスキャンしてください。",
    ),
    "FSA002": RuleText(
        "理由のない抑制コメント",
        "`# kaizen: ignore` コメントは、後でレポートを読むすべての人から検出事項を隠します。"
        "理由がなければ、判断済みの誤検知なのか、問題を隠しただけなのか区別できません。"
        "理由を書くまで、このコメントは何も抑制しません。",
        "コメントの後に理由を書いてください：`# kaizen: ignore[FSA301] -- the response is filtered by the gateway`。",
    ),
    "FSA101": RuleText(
        "クエリ結果のループ内でのクエリ（N+1）",
        "反復ごとにステートメントが 1 つ増えます。N 行で N+1 回の往復になり、"
        "エンドポイントはデータ量に比例して遅くなります。",
        "関連する行を 1 つのステートメントで取得してください：JOIN、`selectinload()`、"
        "またはループの前に `WHERE id IN (...)` の 1 クエリ。",
    ),
    "FSA102": RuleText(
        "行ごとに読み込まれる遅延リレーションシップ（N+1）",
        "各行で遅延リレーションシップを読む（またはレスポンスのシリアライザーに読ませる）と、"
        "1 行ごとに SELECT が発行されます。asyncio では暗黙の I/O となり `MissingGreenlet` が発生します。",
        "クエリに即時読み込みのオプションを付けてください（コレクションには `selectinload(Model.rel)`、"
        "多対一には `joinedload(Model.rel)`）。テストで検出するにはリレーションシップに `lazy='raise'` を指定します。",
    ),
    "FSA103": RuleText(
        "並行タスク間で共有される 1 つの AsyncSession",
        "AsyncSession は 1 つの接続と進行中の 1 つのトランザクションです。SQLAlchemy のドキュメントでは、"
        "並行タスク（gather、TaskGroup、create_task）での使用は安全でないとされています。"
        "ステートメントが 1 つの接続上で入り混じり、失敗したり状態を壊したりします。",
        "並行タスクごとに sessionmaker から専用のセッションを渡すか、ステートメントを順番に実行してください。",
    ),
    "FSA104": RuleText(
        "イベントループ上のブロッキング呼び出し",
        "`async def` のルートや依存関係はイベントループ上で動きます。その下（ルート → サービス → リポジトリ）"
        "のどこかでブロッキングする DB や I/O の呼び出しがあると、戻るまでワーカーの他のリクエストがすべて止まります。",
        "非同期 API（AsyncSession、httpx.AsyncClient、asyncio.sleep）を使うか、ルートを通常の `def` で宣言して"
        "FastAPI にスレッドプールで実行させるか、呼び出しを `await run_in_threadpool(...)` で包んでください。",
    ),
    "FSA105": RuleText(
        "件数の上限がない結果セット",
        "LIMIT のないクエリや、クライアントが任意の値（「すべて」を意味する -1 を含む）を指定できるページサイズは、"
        "テーブルが大きくなるにつれてテーブル全体を読み込んでシリアライズします。",
        "常にページングしてください：`limit: int = Query(50, ge=1, le=200)` とステートメントへの `.limit(limit)`。",
    ),
    "FSA106": RuleText(
        "リクエストで指定される OFFSET ページング",
        "PostgreSQL は読み飛ばす行もすべて読んで捨てるため、深いページほど線形に遅くなります。"
        "一意な ORDER BY がないと、ページが重複したり行が抜けたりします。",
        "キーセットページング（`WHERE (created_at, id) < (:last_created_at, :last_id) ORDER BY created_at DESC, "
        "id DESC LIMIT :n`）を使うか、オフセットに上限を設けてください。",
    ),
    "FSA107": RuleText(
        "先頭がワイルドカードの LIKE",
        "`%` で始まるパターンは B-tree インデックスを使えないため、検索のたびにテーブル全体をスキャンします。",
        "トライグラムインデックス（`CREATE INDEX ... USING gin (col gin_trgm_ops)`）を作るか、"
        "全文検索を使うか、パターンを先頭一致（`startswith`）にしてください。",
    ),
    "FSA108": RuleText(
        "行を読み込んで件数を数えている",
        "`len(....all())` は件数を数えるためだけにすべての行を転送して組み立てます。",
        "データベースに数えさせてください：`select(func.count()).select_from(Model).where(...)`。",
    ),
    "FSA109": RuleText(
        "ループ内で行ごとにコミットまたはフラッシュ",
        "行ごとのコミットは、行ごとに往復 1 回と WAL のフラッシュ 1 回です。"
        "10 000 行の一括投入は 10 000 個のトランザクションになります。",
        "すべての行を追加してから 1 回だけコミットしてください（一括挿入には "
        "`session.execute(insert(Model), rows)`）。",
    ),
    "FSA110": RuleText(
        "予約済みの Declarative 属性 `metadata` を列として使用",
        "Declarative はテーブルの MetaData をクラス属性 `metadata` に保持します。この名前の列があると、"
        "モデルのインポート時に `InvalidRequestError: Attribute name 'metadata' is reserved` が発生し、"
        "アプリケーションが起動しません。",
        "列名はそのままに属性名を変えてください：`meta: Mapped[dict] = mapped_column('metadata', JSONB)`。",
    ),
    "FSA111": RuleText(
        "SQLAlchemy 2 の Row に対する `dict(row)`",
        "SQLAlchemy 2.0 以降、Row はマッピングではなく名前付きタプルのように振る舞います。"
        "`dict(row)` は例外になる（または各行が 2 列のとき偶然値を対にしてしまう）ことがあります。",
        "`row._mapping`（読み取り専用のマッピング）、`dict(row._mapping)`、または `result.mappings()` を反復してください。",
    ),
    "FSA112": RuleText(
        "AsyncSession.stream() に対する `async with`",
        "`AsyncSession.stream()` は AsyncResult を返すコルーチンで、非同期コンテキストマネージャーなのは "
        "`AsyncConnection.stream()` だけです。`async with session.stream(...)` は毎回 TypeError になり、"
        "エンドポイントは一度もストリーミングしません。",
        "`result = await session.stream(stmt)` の後に `async for row in result:`、または "
        "`async with engine.connect() as conn: async with conn.stream(stmt) as result:` としてください。",
    ),
    "FSA113": RuleText(
        "PostgreSQL の JSONB が適する箇所での JSON 列",
        "PostgreSQL の `json` は与えられたテキストのまま保存するため、`->`/`->>` のたびに文書を再解析し、"
        "包含やキー検索に GIN インデックス（`jsonb_path_ops`）を使えません。`jsonb` は解析済みで保存され、"
        "問い合わせが速く、インデックスも作れます。",
        "`from sqlalchemy.dialects.postgresql import JSONB` と `mapped_column(JSONB)` を使ってください"
        "（マイグレーションは `ALTER COLUMN ... TYPE jsonb USING col::jsonb`）。",
    ),
    "FSA201": RuleText(
        "リクエストごとに作られる Engine",
        "Engine は接続プールを持ち、プロセスごとに 1 回作るものです。リクエストごとに作ると毎回新しい接続"
        "（とプール）が開かれ、サーバーが拒否するまで接続が漏れます。",
        "Engine はモジュールレベルかライフスパンハンドラーで 1 回だけ作り、依存関係を通じて共有してください。",
    ),
    "FSA202": RuleText(
        "expire_on_commit=False のない非同期セッションファクトリ",
        "コミット後はすべての属性が失効します。次の属性読み取り（多くはレスポンスのシリアライザー）には暗黙の I/O が必要ですが、"
        "AsyncSession ではそれができず `MissingGreenlet` になります。",
        "`async_sessionmaker(engine, expire_on_commit=False)` としてください。",
    ),
    "FSA203": RuleText(
        "閉じられないセッション",
        "依存関係から返される、または `with` なしで作られて閉じられないセッションは、ガベージコレクションまで"
        "接続を借りたままにします。負荷がかかるとプールが枯渇します。",
        "`with SessionLocal() as session:` の中で `yield` する依存関係を使ってください（または try/finally で close）。",
    ),
    "FSA204": RuleText(
        "pre-ping も recycle もない長寿命のプール",
        "プール内の接続は、サーバー、プロキシ、ファイアウォールに切断されると壊れます。その後の最初のリクエストが失敗します。",
        "`create_engine(url, pool_pre_ping=True)` と `pool_recycle=1800` の一方または両方を指定してください。",
    ),
    "FSA205": RuleText(
        "プール設定の不一致",
        "デプロイ構成に合わないプール設定です：asyncpg のプリペアドステートメントのキャッシュは PgBouncer の"
        "トランザクションプーリングの背後で壊れ、トランザクションプーリングの背後のアプリ側プールは二重プールになり、"
        "プーラーのない NullPool はリクエストごとに再接続し、プールサイズ × ワーカー数が max_connections を超えると"
        "負荷時に接続が拒否されます。",
        "プールをデプロイ構成に合わせてください。この検出事項の詳細を参照してください。",
    ),
    "FSA206": RuleText(
        "echo=True のハードコード",
        "すべてのステートメントとそのパラメーターがログに出力されます。遅く、うるさく、ログに個人データが残ります。",
        "設定から制御してください（`echo=settings.sql_echo`、既定はオフ）。",
    ),
    "FSA207": RuleText(
        "echo_pool=True のハードコード",
        "プールの貸し出し・返却・リセットがすべてログに出力されます。本番ではリクエストごとに 1 行のログになり、"
        "本当の警告が埋もれます。「開発時のみ」というコメントがあってもそうはなりません。",
        "設定から制御するか（`echo_pool=settings.debug_pool`、既定はオフ）、デバッグ中だけ `sqlalchemy.pool` "
        "ロガーのレベルを上げてください。",
    ),
    "FSA301": RuleText(
        "レスポンスモデルなしで ORM オブジェクトを返すルート",
        "レスポンスモデルがないと、FastAPI はパスワードハッシュや内部用の列を含むオブジェクトのすべてのフィールドを"
        "シリアライズし、API の形がテーブルに引きずられます。",
        "公開するフィールドを列挙した Pydantic スキーマで `response_model=`（または戻り値の型注釈）を宣言してください。",
    ),
    "FSA302": RuleText(
        "BackgroundTasks での重い処理やリクエストのセッションの使用",
        "バックグラウンドタスクはレスポンス後に同じワーカーで実行されます。重い処理はリクエストと競合し、"
        "タスクの実行時にはリクエストのセッションはすでに閉じられています。",
        "タスクの中で新しいセッションを開き、重い処理はタスクキュー（Celery、arq）に送ってください。",
    ),
    "FSA303": RuleText(
        "リクエストごとに作り直される設定",
        "`BaseSettings()` は作られるたびに環境変数と .env ファイルを読みます。",
        "`@lru_cache def get_settings(): return Settings()` とし、`get_settings` に依存してください。",
    ),
    "FSA304": RuleText(
        "長時間ブロックする同期ルート",
        "同期ルートは既定で 40 スレッドのスレッドプールで動きます。長い sleep やネットワーク呼び出しはそれぞれ"
        "スレッドを 1 つ占有し、41 番目の同時リクエストは待たされます。",
        "非同期クライアントを使って `async def` のルートにするか、処理をキューに移してください。",
    ),
    "FSA305": RuleText(
        "リクエストごとに変更されるモジュールレベルの可変状態",
        "モジュールのグローバル変数はプロセスごとです。各ワーカーが別々のコピーを持ち、再起動で失われ、"
        "同時リクエストで競合します。",
        "共有する状態はデータベースかキャッシュ（Redis）に、リクエストごとの状態はリクエストに持たせてください。",
    ),
    "FSA306": RuleText(
        "uvloop と httptools のないサーバー",
        "uvicorn が uvloop と httptools を使うのは、それらがインストールされ（`uvicorn[standard]`）、上書きされていない"
        "場合だけです。そうでなければ asyncio の純 Python のループと h11 パーサーで動き、リクエストあたりの CPU が"
        "大きく増えます。アプリのモジュールのインポート時に設定したイベントループポリシーは遅すぎます。"
        "その時点で uvicorn はすでにループを作っています。",
        "`uvicorn[standard]` に依存し、`loop`/`http` を auto のままにするか、`loop='uvloop', http='httptools'`"
        "（`--loop uvloop --http httptools`）を指定してください。",
    ),
    "FSA307": RuleText(
        "エクスポート全体をメモリ上で組み立てて 1 回のレスポンスで送信",
        "上限のないステートメントの全行を返すエクスポートのルートは、最初の 1 バイトを送る前に、結果全体と JSON 文書全体を"
        "ワーカーのメモリ上に組み立てます。FastAPI の既定のエンコーダー（`jsonable_encoder` + `json.dumps`、純 Python）"
        "では、大きなテーブルのシリアライズだけで数秒かかります。",
        "ストリーミングしてください：`await session.stream(stmt)`（または `execution_options(yield_per=1000)`）を"
        "`StreamingResponse` で NDJSON として送るか、ページングします。大きな JSON ボディにはレスポンスモデルを宣言する"
        "（FastAPI 0.130 以降は Rust でシリアライズ）か、orjson のレスポンスクラスを使ってください。",
    ),
    "FSA401": RuleText(
        "認証情報付きで任意のオリジンを許可する CORS",
        "`allow_origins=['*']` と `allow_credentials=True` の組み合わせでは、Starlette はどの Origin もそのまま返します。"
        "あらゆるウェブサイトが認証付きのリクエストを送り、その応答を読めます。",
        "信頼するオリジンを明示的に列挙するか、`allow_credentials` を外してください。",
    ),
    "FSA402": RuleText(
        "文字列から組み立てた SQL",
        "f 文字列、`+`、`%`、`.format` で組み立てた SQL は、一部でもリクエスト由来ならインジェクション可能で、"
        "ステートメントキャッシュも効きません。",
        "バインドパラメーターを使ってください：`text('... WHERE id = :id').bindparams(id=value)` または SQL 式言語。",
    ),
    "FSA403": RuleText(
        "ユーザー入力で選ばれる列",
        "リクエスト由来のキーで `getattr(Model, key)` / `order_by(key)` を行うと、クライアントが任意の属性に到達したり"
        "（`password_hash` での並べ替えで 1 行ずつ漏えい）、テキストの列を通じて SQL を注入したりできます。",
        "許可するキーを列に対応付けてください：`SORTS = {'name': Model.name}` とし、`key in SORTS` を確認してから "
        "`SORTS[key]`。またはパラメーターを Literal/Enum で型付けします。",
    ),
    "FSA404": RuleText(
        "リクエストボディからの一括代入",
        "ボディのすべてのキーをモデルにコピーすると、クライアントが設定してはならないフィールド"
        "（`is_admin`、`owner_id`、`balance`）を設定できてしまいます。",
        "書き込み可能なフィールドだけのスキーマを受け取り、明示的に代入してください（または `model_dump(include={...})`）。",
    ),
    "FSA405": RuleText(
        "コード内の認証情報",
        "ソースコード内のパスワードは、リポジトリのすべてのクローン、ログ、バックアップに含まれ、"
        "リリースなしにはローテーションできません。",
        "URL やパスワードは環境変数かシークレットストア（pydantic-settings の `SecretStr`）から読んでください。",
    ),
    "FSA501": RuleText(
        "Pydantic 2 環境での Pydantic v1 API",
        "プロジェクトは Pydantic 2 を固定しています。v1 の名前（`.dict()`、`orm_mode`、`@validator`、`parse_obj`）は"
        "非推奨の互換層で、遅く、v3 で削除されます。",
        "v2 の名前を使ってください：`model_dump()`、`from_attributes=True`、`@field_validator`、`model_validate()`。",
    ),
    "FSA502": RuleText(
        "SQLAlchemy 2 のコードでのレガシーな session.query()",
        "`Session.query()` は 1.x のレガシー API です。AsyncSession には存在せず、1 つのコードベースに 2 つの書き方が混在します。",
        "`session.scalars(select(Model).where(...))` としてください。",
    ),
    # --- DB scan (titles carry the measured figures: shown beside as data) -------------
    "db.avg_query_time": RuleText("平均クエリ時間が SLO を超過"),
    "db.cache_hit": RuleText("キャッシュヒット率が SLO 未満"),
    "db.capabilities": RuleText("Kaizen が参照できない統計情報"),
    "db.conn_headroom": RuleText("max_connections の余裕不足"),
    "db.duplicate_index": RuleText("重複または前方一致のインデックス"),
    "db.fk_without_index": RuleText("使えるインデックスのない外部キー"),
    "db.index_suggestion": RuleText("インデックスの提案"),
    "db.invalid_constraint": RuleText("検証されていない制約"),
    "db.invalid_index": RuleText("無効なインデックス"),
    "db.pool_usage": RuleText("接続プールの使用率"),
    "db.replication": RuleText("レプリケーションの問題"),
    "db.seqscan_heavy": RuleText("シーケンシャルスキャンの多いテーブル"),
    "db.sequence_overflow": RuleText("範囲の上限に近いシーケンス"),
    "db.settings": RuleText("見直すべきデータベース設定"),
    "db.slow_families": RuleText("遅いステートメント"),
    "db.slow_query_rate": RuleText("スロークエリ率が SLO を超過"),
    "db.txid_wraparound": RuleText("トランザクション ID の周回が近い"),
    "db.unused_index": RuleText("使われていないインデックス"),
    "db.vacuum_health": RuleText("VACUUM が追いついていないテーブル"),
    # --- security scan ----------------------------------------------------------------
    "sec.banner": RuleText("Server ヘッダーによる製品・バージョンの開示"),
    "sec.cache_headers": RuleText("キャッシュ制御ヘッダーのない GET 応答"),
    "sec.compression": RuleText("無圧縮で送られる大きな応答"),
    "sec.cors": RuleText("CORS の設定の問題"),
    "sec.error_leakage": RuleText("エラー応答による内部情報の漏えい"),
    "sec.headers": RuleText("セキュリティヘッダーの不足"),
    "sec.input_bounds": RuleText("上限のない入力の受け付け"),
    "sec.keepalive": RuleText("keep-alive の設定の問題"),
    "sec.negative_testing": RuleText("不正な入力に対する想定外の応答"),
    "sec.rate_limiting": RuleText("レート制限が見当たらない"),
    "sec.unauthenticated_writes": RuleText("認証なしで受け付けられる書き込み"),
    # --- runbooks and the regression sentinel -------------------------------------------
    "runbook.missing": RuleText("公開済みの標準ランブックがない"),
    "benchmark.regression": RuleText("ベースラインからの悪化（回帰センチネル）"),
    # --- benchmarks -------------------------------------------------------------------
    "benchmark.bottleneck": RuleText("ボトルネックのオペレーション"),
    "benchmark.journey_failures": RuleText("失敗するジャーニー"),
    "benchmark.operation_errors": RuleText("エラーを返すオペレーション"),
    "benchmark.slow_operation": RuleText("遅いオペレーション"),
}


def japanese(finding) -> RuleText | None:
    """The Japanese texts of ``finding``'s rule when the page is in Japanese, else None."""
    if not (get_language() or "").startswith("ja"):
        return None
    return JA.get(finding.rule_id)


def title(finding) -> str:
    found = japanese(finding)
    return found.title if found else finding.title


def why(finding) -> str:
    found = japanese(finding)
    stored = (finding.evidence or {}).get("why", "") if isinstance(finding.evidence, dict) else ""
    return found.why if found and found.why else stored


def fix(finding) -> str:
    found = japanese(finding)
    return found.fix if found and found.fix else finding.fix_hint


def translated_title(finding) -> bool:
    """Whether the title shown is not the stored one (the page then shows that beside it)."""
    return japanese(finding) is not None
